//! Routes registered with their documentation, in one step: [`documented!`] takes a
//! handler and routes it where its `#[utoipa::path]` says, for the methods it says, and
//! adds that operation (with the schemas it names) to the OpenAPI document. A route
//! cannot be served undocumented, nor documented and not served.
//!
//! It does what `utoipa_axum::routes!` does, for handlers generic over the stores
//! (`auth::login::<B>`), which that macro cannot name; the result goes to utoipa-axum's
//! `OpenApiRouter` as `routes!`'s does.

use axum::{
    handler::Handler,
    routing::{MethodFilter, MethodRouter},
};
use utoipa::{__dev::SchemaReferences, openapi::path::Paths, Path};
use utoipa_axum::{router::UtoipaMethodRouter, PathItemExt};

/// The routes of `handler`, documented by `P` (the struct `#[utoipa::path]` makes beside
/// it): what [`documented!`] expands to.
pub(crate) fn route_of<P, H, T, S>(handler: H) -> UtoipaMethodRouter<S>
where
    P: Path + SchemaReferences,
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    let path = P::path();
    let methods = P::methods();
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    let filter = methods
        .iter()
        .map(PathItemExt::to_method_filter)
        .reduce(MethodFilter::or)
        .expect("a #[utoipa::path] names a method");
    let router = MethodRouter::new().on(filter, handler);
    let mut paths = Paths::new();
    paths.add_path_operation(&path, methods, P::operation());
    (schemas, paths, router)
}

/// `documented!(module::handler)` or `documented!(module::handler::<B>)`: the handler's
/// routes and documentation, for `OpenApiRouter::routes`.
macro_rules! documented {
    ($module:ident :: $handler:ident $(::<$($generic:ty),+ $(,)?>)?) => {
        ::utoipa_axum::paste! {
            $crate::documented::route_of::<$module::[<__path_ $handler>], _, _, _>(
                $module::$handler $(::<$($generic),+>)?
            )
        }
    };
    ($handler:ident $(::<$($generic:ty),+ $(,)?>)?) => {
        ::utoipa_axum::paste! {
            $crate::documented::route_of::<[<__path_ $handler>], _, _, _>(
                $handler $(::<$($generic),+>)?
            )
        }
    };
}

pub(crate) use documented;
