# The book's (empty) common/__init__.py. This fake fails: fastconv must not run it.
raise RuntimeError("BOOK-COMMON-__init__ executed: fastconv should provide the package object")
