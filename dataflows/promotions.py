"""Entry point for `python -m bytewax.run dataflows.promotions`: the flow built from `PROMO_*`."""

from dataflows.flow import build_flow
from dataflows.settings import load_settings

flow = build_flow(load_settings())
