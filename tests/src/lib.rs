//! Harness for the workspace integration tests in `tests/tests/`: each test starts the real
//! servers it needs on free loopback ports. Servers arrive with the issues that need them.
