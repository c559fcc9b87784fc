mod boundaries;
mod cli;
mod demo_template;
mod farm;
mod smart_render;
mod studio;
mod support;
mod trigger;
