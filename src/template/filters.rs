//! Placeholder: replaced by the full Ansible filter library.
pub fn register(env: &mut minijinja::Environment<'_>) {
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
}
