# Type stubs of the compiled accelerators; each function's Python reference is named.
__version__: str
