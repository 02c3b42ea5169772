// simulator.js
