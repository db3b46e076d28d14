"""The SWV dashboard: a static page (HTML, CSS, plain JavaScript) served by swv-aggregate.

The page holds no figures: after sign-in it reads the existing ``/v1`` API with the analyst's
bearer token and draws the charts in the browser. Nothing is loaded from another address.
"""

from verzuimhub_swv_aggregate.dashboard.router import router

__all__ = ["router"]
