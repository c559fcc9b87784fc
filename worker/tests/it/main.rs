//! Integration tests of the worker against a fake coordinator.

mod fake;
mod noop;
mod render;
