mod boundaries;
mod cli;
mod demo_template;
mod farm;
mod smart_render;
mod support;
mod trigger;
