"""CLV models: BG/NBD purchases, Gamma-Gamma spend, and their combination into discounted CLV."""
