//! The Router behind the real `lambda_http` adapter, fed API Gateway HTTP API (v2) payloads.

use jiazheng_core::ingest::Ingestor;
use jiazheng_core::lake::Lake;
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::samples;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};

async fn call(state: jiazheng_web::AppState, payload: &str) -> serde_json::Value {
    let request: LambdaRequest = serde_json::from_str(payload).expect("API Gateway v2 event");
    let adapter = Adapter::from(jiazheng_web::router(state));
    let response = adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("response");
    serde_json::to_value(response).unwrap()
}

/// A temporary lake with the sample data, and the API's state on it.
async fn with_samples() -> (tempfile::TempDir, Lake, jiazheng_web::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let ingestor = Ingestor::new(lake.clone(), Some(Pseudonymizer::new(&[7; 32]).unwrap()));
    samples::import_regions(&lake, &samples::inner_mongolia())
        .await
        .unwrap();
    samples::load(&ingestor, &samples::checkout_dir())
        .await
        .unwrap();
    (dir, lake, jiazheng_web::AppState::new(ingestor))
}

#[tokio::test]
async fn indicator_request_through_api_gateway() {
    let (_dir, _, state) = with_samples().await;

    let response = call(
        state.clone(),
        include_str!("../events/apigw-v2-outlet-coverage.json"),
    )
    .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["headers"]["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let data = body["data"].as_array().unwrap();
    let codes: Vec<&str> = data.iter().map(|d| d["region"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["152201", "152202", "152221", "152222", "152223", "152224"]
    );
    assert_eq!(data[0]["name"], "乌兰浩特市");
    assert_eq!(data[0]["denominator"], 61.0);

    let response = call(
        state,
        include_str!("../events/apigw-v2-unknown-region.json"),
    )
    .await;
    assert_eq!(response["statusCode"], 404);
    assert_eq!(
        response["headers"]["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn pages_through_api_gateway() {
    let (_dir, lake, state) = with_samples().await;

    let response = call(
        state.clone(),
        include_str!("../events/apigw-v2-dashboard.json"),
    )
    .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        response["headers"]["content-type"],
        "text/html; charset=utf-8"
    );
    let body = response["body"].as_str().unwrap();
    assert!(body.contains("<h1>兴安盟"), "{body}");
    assert!(body.contains("乌兰浩特市"));

    // The sign-in form, posted through API Gateway: a wrong key is refused, a right one sets
    // a Secure cookie (API Gateway forwards https).
    let sign_in = include_str!("../events/apigw-v2-sign-in.json");
    let response = call(state.clone(), &sign_in.replace("TOKEN", "jz_wrong")).await;
    assert_eq!(response["statusCode"], 401, "{response}");
    let tree = jiazheng_core::regions::stored::load(
        &lake,
        jiazheng_core::regions::stored::Scope::Published,
    )
    .await
    .unwrap()
    .unwrap()
    .0;
    let (token, _) = jiazheng_core::keys::issue(
        &lake,
        tree.get("152201").unwrap(),
        jiazheng_core::keys::Role::Submitter,
    )
    .await
    .unwrap();
    let response = call(state, &sign_in.replace("TOKEN", &token)).await;
    assert_eq!(response["statusCode"], 303, "{response}");
    let cookies = response["cookies"].to_string() + &response["headers"].to_string();
    assert!(
        cookies.contains("HttpOnly") && cookies.contains("Secure"),
        "{response}"
    );
}
