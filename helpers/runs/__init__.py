"""Run records (`records`), where runs execute (`execution`: papermill in warm kernels, on
Dask) and the batch runner behind `python -m helpers run` (`runner`)."""
