mod boundaries;
mod cli;
mod demo_template;
mod farm;
mod support;
mod trigger;
