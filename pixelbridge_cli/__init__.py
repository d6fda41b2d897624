"""``pixelbridge``: the operator command line for a deployed (or local) PixelBridge stack."""
