//! The API Lambda: the library's axum Router behind API Gateway, through `lambda_http`.
//! Outside Lambda it serves the same Router on `JIAZHENG_ADDR` (default 127.0.0.1:8080).

use jiazheng_core::runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let ingestor = runtime::ingestor_from_env(None).await?;
    let router = jiazheng_web::router(jiazheng_web::AppState::new(ingestor));
    if runtime::under_lambda() {
        return lambda_http::run(router).await;
    }
    let addr = std::env::var("JIAZHENG_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("serving on http://{addr}");
    axum::serve(listener, router).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
