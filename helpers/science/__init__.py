"""The science: MNIST pairs (`mnist`, `data`), the networks (`models`), the loss and its
weightings (`losses`) and the training of one run (`training`). Imports nothing above it."""
