"""Test helpers shared by the whole suite: real servers, clocks, settings, waiting."""
