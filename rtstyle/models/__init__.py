"""Networks, VGG-19, the style registry and weight loading."""
