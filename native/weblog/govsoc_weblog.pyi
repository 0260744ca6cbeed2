# Type stubs of the compiled module; each function names its Python reference.
__version__: str
