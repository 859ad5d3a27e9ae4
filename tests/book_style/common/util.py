# The book's common/util.py stands here. This fake fails on import: fastconv must serve it.
raise RuntimeError("BOOK-COMMON-util imported: the book's file was used, not fastconv")
