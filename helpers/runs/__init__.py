"""Where runs execute and what they leave: run records (`records`), one papermill execution
(`execution`), the warm kernels (`kernels`), the pools of workers (`pools`) and the batch
runner behind `python -m helpers run` (`runner`)."""
