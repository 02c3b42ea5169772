// util.js
