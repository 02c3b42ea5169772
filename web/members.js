// members.js
