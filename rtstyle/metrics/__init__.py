"""Measurements of stylized output: temporal stability (warping error) and the flow it needs."""
