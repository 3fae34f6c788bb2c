"""Everything about frames: sources, sinks, the inference engine, smoothing, the pipeline."""
