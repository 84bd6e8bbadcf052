"""The data sets: MNIST, CIFAR-10 and FER2013 loaders, their class names, caches, checksums and downloads.

It may import ``common`` (errors, atomic files) and nothing else of the project; tasks import it, the
Trainer never does.
"""
