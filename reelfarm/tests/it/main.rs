mod cli;
mod demo_template;
mod farm;
mod trigger;
