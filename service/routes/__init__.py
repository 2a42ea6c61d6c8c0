"""One router per resource: segment, lanes, model, health, admin, metrics, the page."""
