# Thin aliases of the npm scripts, for the commands the deployment spec uses.
.PHONY: test test-functional-strict doctor demo

test:
	npm test

test-functional-strict:
	npm run test:functional

doctor:
	npm run doctor

demo:
	npm run demo

# Both images of deploy/images/images.json, offline: the project's engine
# (scripts/docker-engine), local bases, the static apps, docker build
# --network none. Prints each image's size and build time (docs/deployment-runbook.md).
.PHONY: images
images:
	npm run --silent images

# The containerized suites (test/images) and containerlab in the kernel lab,
# against the images of `make images` (scripts/test-images builds them first).
.PHONY: test-images
test-images:
	scripts/test-images

# Air-gapped delivery (docs/air-gap.md). OFFLINE_BUNDLE is the bundle directory,
# REGISTRY (HOST/PATH) mirrors the loaded images, OFFLINE_ARGS passes more flags.
OFFLINE_BUNDLE ?= dist/offline/tcpao-proxy-$(shell node -p "require('./package.json').version")
OFFLINE_ARGS ?=
REGISTRY_ARG = $(if $(REGISTRY),--registry "$(REGISTRY)")
.PHONY: prepare-offline load-offline verify-offline

prepare-offline:
	npm run --silent offline:prepare -- --out "$(OFFLINE_BUNDLE)" $(OFFLINE_ARGS)

load-offline:
	npm run --silent offline:load -- "$(OFFLINE_BUNDLE)" $(REGISTRY_ARG) $(OFFLINE_ARGS)

verify-offline:
	npm run --silent offline:verify -- "$(OFFLINE_BUNDLE)" $(REGISTRY_ARG) $(OFFLINE_ARGS)
