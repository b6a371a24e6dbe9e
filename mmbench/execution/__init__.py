"""Running cells: one cell loop (train or load, evaluate, record a failure) shared by the local
executor and the Ray executor, the evaluation of one model under one perturbation, device
choice, and the probe that runs each model once before anything trains."""
