mod api;
mod blobs;
mod health;
mod rest;
mod smart;
mod store;
