"""Wrong implementations of the exercises, one per classic mistake, per lesson."""
