"""Uplift models: the effect of a contact (a win-back offer, a campaign e-mail) on each customer's chance to
buy or amount spent, learnt from a randomised campaign; one learner per file over `_base.UpliftEstimator`,
saved as data by `persist`."""

from custval.models.uplift.averaged import AveragedUplift
from custval.models.uplift.class_transformation import ClassTransformation
from custval.models.uplift.drlearner import DRLearner
from custval.models.uplift.persist import load_uplift, save_uplift
from custval.models.uplift.slearner import SLearner
from custval.models.uplift.tlearner import TLearner
from custval.models.uplift.xlearner import XLearner

__all__ = ["AveragedUplift", "ClassTransformation", "DRLearner", "SLearner", "TLearner", "XLearner", "load_uplift", "save_uplift"]
