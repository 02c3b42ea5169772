// alerts.js
