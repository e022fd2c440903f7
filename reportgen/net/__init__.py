"""The network: every module that runs MXNet (the LeNet, saved models and their graphs,
training on one or many devices and machines, predicting, looking inside). No other
package imports mxnet; importing this one imports nothing (each module loads mxnet itself,
so the command line reaches `distributed` without it)."""
