mod cli;
mod demo_template;
