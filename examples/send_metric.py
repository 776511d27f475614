# The spec's Python example; only the URL, key and project id come from the environment.
import os
import requests
import time

def send_metric(metric_id, metric_name, value):
    url = os.environ.get('STATHOOK_URL', 'http://127.0.0.1:8080') + '/api/webhooks/custom'
    headers = {
        'Authorization': 'Bearer ' + os.environ.get('STATHOOK_API_KEY', 'YOUR_API_KEY'),
        'Content-Type': 'application/json'
    }
    data = {
        'projectId': os.environ.get('STATHOOK_PROJECT_ID', 'YOUR_PROJECT_ID'),
        'metrics': [{
            'metricId': metric_id,
            'metricName': metric_name,
            'value': value,
            'unit': 'count',
            'timestamp': int(time.time() * 1000)
        }]
    }

    response = requests.post(url, json=data, headers=headers)
    print(f'Metric sent: {response.json()}')

# Usage
send_metric('daily_signups', 'Daily Signups', 42)
