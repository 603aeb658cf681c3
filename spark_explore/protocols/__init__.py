"""Exploration protocols: each completes its tests on the driver from the merged states."""
