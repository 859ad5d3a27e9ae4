# The book's common/functions.py stands here. This fake fails on import: fastconv must serve it.
raise RuntimeError("BOOK-COMMON-functions imported: the book's file was used, not fastconv")
