"""Mirror of the seed's ``cnn.utils`` so that ``cnn.`` -> ``fastconv.keras.`` is the only
change its imports need (``from fastconv.keras.utils.visualization import history_show``)."""
