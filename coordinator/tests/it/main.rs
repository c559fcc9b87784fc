mod blobs;
mod api;
mod health;
mod rest;
mod smart;
mod store;
