# RoboMD for ROS 2. `make demo` and `make test` set everything up on first use.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup demo test lint clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(ENV) robomd bringup config/campaigns/lift_bc.yaml --out runs/demo
	@echo "report: runs/demo/report.html"

test: setup
	@$(ENV) python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(ENV) ruff check .

clean:
	rm -rf build install log
