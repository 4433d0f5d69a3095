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
