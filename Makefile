# meshctl — the two commands of a fresh machine are `make run` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
APT_PACKAGES = docker.io docker-compose debootstrap haproxy nginx dnsutils git busybox-static victoria-metrics patroni python3-consul postgresql chromium chromium-driver prometheus

.PHONY: install system-deps bench-deps run test unit lint bench

install:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test,fast]'

# Debian packages the integration tests drive for real (installed only when missing).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(PYTHON) -m meshctl agent -dev

test: install system-deps
	$(PYTHON) -m ruff check meshctl tests bench
	$(PYTHON) -m mypy meshctl
	$(PYTHON) -m pytest -q -ra --durations=15

unit: install
	$(PYTHON) -m pytest -q -m "not integration"

lint:
	$(PYTHON) -m ruff check meshctl tests bench
	$(PYTHON) -m mypy meshctl

# load generators for bench/ (etcd-server only for the cluster comparison)
bench-deps:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk dnsperf etcd-server >/dev/null

bench: install
	for b in store cluster template dns checks lock acl registrator; do $(PYTHON) bench/$$b.py || exit 1; done
