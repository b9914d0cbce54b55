"""The science: MNIST pairs (`mnist`, `data`), the networks (`models`), the loss and its
weightings (`losses`) and the training of one run (`training`). Imports nothing above it."""

# Set to 0 where no one watches a training (the runner, the summary, the test suite): no
# progress bar then lands in executed notebooks or logs (science.training reads it).
PROGRESS_VARIABLE = "HELPERS_PROGRESS"
