"""CLV models: BG/NBD purchases, Gamma-Gamma spend, and their combination into discounted CLV."""

from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue

__all__ = ["BetaGeo", "CustomerValue", "GammaGamma"]
