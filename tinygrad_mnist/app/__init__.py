"""The training app that `tinygrad-mnist` runs: configuration, training, inference and
prediction, reports, metrics and plots, export, the web server and sweeps. It is built
on the framework at the package root and is loaded only when used."""
