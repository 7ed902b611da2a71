"""Benchmark sweeps, calibration of the estimator, and reports: the code behind `orch bench/calibrate/report`."""
