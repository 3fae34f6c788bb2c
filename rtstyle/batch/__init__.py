"""`rtstyle batch`: many videos and images, on this machine or on a Ray cluster.

    plan = plan_batch(inputs, outdir, split_seconds=60, preroll=preroll_frames(smooth))
    style = bundle_style(style, ship=use_ray)          # resolved once, shipped once
    with LocalWorkers(recipe, style, workers=2, threads=1) as workers:   # or RayWorkers(...)
        report = BatchRunner(plan, workers, retries=1).run()

`plan` decides what is done (and what a finished earlier run already did), `work` is what a
worker runs (a still, a video or a part of one through `VideoRun`, a join), `join` puts a long
video's parts back together without encoding again, `runner` drives it all.
"""
