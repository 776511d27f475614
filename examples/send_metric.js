// The spec's Node.js example; only the URL, key and project id come from the environment.
const axios = require('axios');

async function sendMetric(metricId, metricName, value) {
  try {
    const response = await axios.post(
      (process.env.STATHOOK_URL || 'http://127.0.0.1:8080') + '/api/webhooks/custom',
      {
        projectId: process.env.STATHOOK_PROJECT_ID || 'YOUR_PROJECT_ID',
        metrics: [{
          metricId,
          metricName,
          value,
          unit: 'count',
          timestamp: Date.now()
        }]
      },
      {
        headers: {
          'Authorization': 'Bearer ' + (process.env.STATHOOK_API_KEY || 'YOUR_API_KEY'),
          'Content-Type': 'application/json'
        }
      }
    );
    console.log('Metric sent:', response.data);
  } catch (error) {
    console.error('Error sending metric:', error.message);
    process.exitCode = 1;
  }
}

// Usage
sendMetric('daily_signups', 'Daily Signups', 42);
