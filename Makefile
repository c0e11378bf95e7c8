# RoboMD for ROS 2. `make demo` and `make test` set everything up on first use.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup demo test lint clean lerobot-env

setup:
	@bash scripts/setup.sh

demo: setup
	@$(ENV) robomd bringup config/campaigns/lift_bc_visual.yaml --out runs/demo
	@echo "report: runs/demo/report.html"

test: setup
	@$(ENV) python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(ENV) ruff check .

# Optional: the separate LeRobot environment for lerobot:<dir> policies (not part of `make setup`).
lerobot-env:
	@bash scripts/setup_lerobot.sh

clean:
	rm -rf build install log
