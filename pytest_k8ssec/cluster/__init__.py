"""Cluster providers behind one handle: existing, local, kind, and the auto choice between them."""
