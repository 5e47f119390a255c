//! The Router behind the real `lambda_http` adapter, fed API Gateway HTTP API (v2) payloads.

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use shared::ingest::Ingestor;
use shared::lake::Lake;
use shared::privacy::Pseudonymizer;
use shared::{api, samples};

async fn call(state: api::AppState, payload: &str) -> serde_json::Value {
    let request: LambdaRequest = serde_json::from_str(payload).expect("API Gateway v2 event");
    let adapter = Adapter::from(api::router(state));
    let response = adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("response");
    serde_json::to_value(response).unwrap()
}

#[tokio::test]
async fn indicator_request_through_api_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let ingestor = Ingestor::new(lake, Some(Pseudonymizer::new(&[7; 32]).unwrap()));
    samples::load(&ingestor, &samples::checkout_dir())
        .await
        .unwrap();
    let state = api::AppState::new(ingestor);

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
