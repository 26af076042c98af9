//! Test bed for usersync.
